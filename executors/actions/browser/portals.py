"""Browser actions on the enterprise portals: HR, IT and procurement.

Each logs in with credentials named by secrets, finds the record it made on
an earlier attempt by the step's idempotency key (kept as the record's
external reference) or creates it, and saves a screenshot as evidence.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar
from urllib.parse import quote, urlencode, urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from executors.actions.browser.session import BrowserSession, open_browser, warm_up
from executors.base import Action, ActionContext, ActionFailed, NeedsInput

__all__ = ["ACTIONS", "CreateEmployee", "CreateITAccount", "OrderLaptop"]

EMPLOYEE_ID = r"^EMP-\d{5,}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class PortalAction(Action):
    """Shared steps: log in to one portal, find or create one record."""

    category = "browser"
    risk = "medium"
    # Retrying is safe: the external reference finds an earlier attempt's record.
    idempotent = True
    default_timeout_s = 60
    memory_limit_mb = None  # Chromium reserves far more address space than it uses
    # Each action's own Chromium is started in its child before the request.
    warm_up = staticmethod(warm_up)
    portal: ClassVar[str]
    title: ClassVar[str]
    id_field: ClassVar[str]

    def base_url(self, ctx: ActionContext) -> str:
        if not ctx.portal_base_url:
            raise ActionFailed("no portal base URL is configured (AGENTOS_PORTAL_BASE_URL)")
        return f"{ctx.portal_base_url.rstrip('/')}/portals/{self.portal}/"

    def open(self, session: BrowserSession, url: str) -> None:
        """Open a portal page, logging in on the way when asked to.

        A fresh browser opens this portal's pages by way of its login page
        (``?next=`` the page): a page opened first would only redirect there.
        """
        prefix = self.portal.upper()
        login_as = {
            "portal": self.title,
            "user_secret": f"{prefix}_PORTAL_USER",
            "password_secret": f"{prefix}_PORTAL_PASSWORD",
        }
        base = self.base_url(session.ctx)
        if session.logged_in or not url.startswith(base):
            session.goto(url)
            session.login(**login_as)
            return
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        session.goto(f"{base}login/?{urlencode({'next': target})}")
        if not session.login(**login_as):
            session.goto(url)  # this portal did not ask for a login

    def find_existing(self, session: BrowserSession, ctx: ActionContext) -> str:
        """Return the id of the record an earlier attempt created, or ''."""
        self.open(session, f"{self.base_url(ctx)}?{urlencode({'ref': ctx.idempotency_key})}")
        cell = f"tr.record td[data-field='{self.id_field}']"
        found = session.text(cell)
        if found:
            href = session.page.locator(f"{cell} a").first.get_attribute("href") or ""
            session.goto(urljoin(session.page.url, href))
            session.screenshot(f"{self.portal}-existing")
        return found

    def create_or_find(
        self, session: BrowserSession, ctx: ActionContext, fields: dict[str, str], what: str
    ) -> str:
        """Submit the open form with the step's key as external reference.

        When the portal already holds a record with that reference (an
        earlier attempt got that far), return that record's id instead.
        """
        values = {**fields, "external_ref": ctx.idempotency_key}
        unoffered = session.fill(values)
        if unoffered:
            name, offered = next(iter(unoffered.items()))
            raise ActionFailed(
                f"the {self.title} portal has no {name} {values[name]!r}; "
                f"it offers {', '.join(offered)}"
            )
        session.submit("#submit")
        # A saved record redirects to its detail page; only a refused form stays.
        refused = session.page.locator("#record-form").count() > 0
        errors = session.form_errors() if refused else {}
        if errors.get("external_ref"):
            found = self.find_existing(session, ctx)
            if found:
                return found
        if refused:
            session.screenshot(f"{self.portal}-refused")
            detail = "; ".join(f"{k}: {v}" for k, v in errors.items()) or "no reason shown"
            raise ActionFailed(f"the {self.title} portal refused {what}: {detail}")
        record_id = session.text(f"dd[data-field='{self.id_field}']")
        if not record_id:
            raise ActionFailed(
                f"the {self.title} portal showed no {self.id_field} after creating {what}"
            )
        session.screenshot(f"{self.portal}-created")
        return record_id


class CreateEmployee(PortalAction):
    """Create an employee in the HR portal (or find the one this step made)."""

    name = "hr.create_employee"
    description = "Create an employee record in the HR portal; returns its employee_id."
    portal, title, id_field = "hr", "HR", "employee_id"
    secrets = ("HR_PORTAL_USER", "HR_PORTAL_PASSWORD")

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str = Field(min_length=2, max_length=200, description="Full name.")
        department: str = Field(
            min_length=1, max_length=50, description="Engineering, Sales, Finance or People."
        )
        start_date: date | None = Field(default=None, description="First day; today if empty.")
        manager: str = Field(default="", max_length=200)

    class Output(BaseModel):
        employee_id: str

    def run(self, params: Any, ctx: ActionContext) -> BaseModel:
        with open_browser(ctx) as session:
            self.open(session, f"{self.base_url(ctx)}employees/new/")
            employee_id = self.create_or_find(
                session,
                ctx,
                {
                    "name": params.name,
                    "department": params.department,
                    "start_date": (params.start_date or date.today()).isoformat(),
                    "manager": params.manager,
                },
                f"the employee {params.name!r}",
            )
        return self.Output(employee_id=employee_id)


class CreateITAccount(PortalAction):
    """Create the IT account of an HR employee (or find the one this step made)."""

    name = "it.create_account"
    description = "Create an IT account for an HR employee id; returns its generated email."
    portal, title, id_field = "it", "IT", "email"
    secrets = ("IT_PORTAL_USER", "IT_PORTAL_PASSWORD")

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        employee_id: str = Field(pattern=EMPLOYEE_ID, description="HR employee id, EMP-nnnnn.")

    class Output(BaseModel):
        email: str

    def run(self, params: Any, ctx: ActionContext) -> BaseModel:
        with open_browser(ctx) as session:
            self.open(session, f"{self.base_url(ctx)}accounts/new/")
            email = self.create_or_find(
                session,
                ctx,
                {"employee_id": params.employee_id},
                f"an account for {params.employee_id}",
            )
        return self.Output(email=email)


class OrderLaptop(PortalAction):
    """Order a laptop in the procurement portal for an IT email.

    When the portal does not know the model (or none was given) the step asks
    a person to choose among the models the portal offers, and continues from
    the same order form once they have.
    """

    name = "procurement.order_laptop"
    description = (
        "Order a laptop for an IT email in the procurement portal; asks for the "
        "model when the catalog lacks it. Returns the order_id."
    )
    portal, title, id_field = "procurement", "procurement", "order_id"
    secrets = ("PROCUREMENT_PORTAL_USER", "PROCUREMENT_PORTAL_PASSWORD")

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        email: str = Field(pattern=EMAIL, max_length=254, description="The IT account email.")
        model: str = Field(
            default="",
            max_length=100,
            description="Catalog laptop model; asked for when empty or unknown.",
        )

    class Output(BaseModel):
        order_id: str
        laptop_model: str

    def run(self, params: Any, ctx: ActionContext) -> BaseModel:
        chosen = str((ctx.resume_values or {}).get("laptop_model") or params.model).strip()
        with open_browser(ctx) as session:
            form_url = str(
                (ctx.resume_state or {}).get("url")
                or f"{self.base_url(ctx)}orders/new/?email={quote(params.email)}"
            )
            self.open(session, form_url)
            if not chosen:
                self.ask(
                    session,
                    form_url,
                    "No laptop model was given; choose one the procurement portal offers.",
                )
            try:
                order_id = self.create_or_find(
                    session,
                    ctx,
                    {
                        "email": params.email,
                        "laptop_model": chosen,
                    },
                    f"a {chosen!r} laptop for {params.email}",
                )
            except ActionFailed:
                if session.form_errors().get("laptop_model"):
                    self.ask(
                        session,
                        form_url,
                        f"The procurement portal has no laptop model "
                        f"{chosen!r}; choose one it offers.",
                    )
                raise
            if session.page.locator("#record").count():
                chosen = session.text("dd[data-field='laptop.name']") or chosen
        return self.Output(order_id=order_id, laptop_model=chosen)

    def ask(self, session: BrowserSession, form_url: str, message: str) -> None:
        """Pause the step for a model from the portal's own list."""
        offered = [m for m in session.texts("#available-models li[data-model]") if m]
        if not offered:
            raise ActionFailed("the procurement portal offers no laptop models")
        session.screenshot("procurement-needs-model")
        raise NeedsInput(
            message,
            fields={"laptop_model": {"type": "string", "title": "Laptop model", "enum": offered}},
            state={"url": form_url},
        )


ACTIONS = [CreateEmployee, CreateITAccount, OrderLaptop]
