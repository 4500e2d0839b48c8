"""A faithful simulator of the Railway, Vercel, Supabase and GitHub APIs, driven by a seeded world."""
