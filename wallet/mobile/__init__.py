"""The beneficiaries' mobile web app at /app/: one page that a small JavaScript module fills from
the app API (/api/app/v1/), installable, with a service worker for offline start."""
