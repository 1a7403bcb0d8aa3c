from django.apps import AppConfig


class BenchConfig(AppConfig):
    """Benchmark tooling (`seed_scale`): installed by bench/ and test settings only."""

    name = "bench"
    label = "bench"
    verbose_name = "Benchmarks"
