from bench.api_floor import build_app

app = build_app()
