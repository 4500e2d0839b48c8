"""obs_demo: a FastAPI demo app instrumented with obs_instrument, and its load generator."""
