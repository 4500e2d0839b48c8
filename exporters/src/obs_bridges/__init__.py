"""obs_bridges: Prometheus exporters for Railway, Vercel, Supabase and GitHub Actions."""

__version__ = "0.1.0"
