"""Operations: the load balancer's probes, /healthz (the process answers) and /readyz (what the
platform needs to work answers: database, migrations, broker, Celery heartbeat)."""
