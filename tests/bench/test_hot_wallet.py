"""bench/hot_wallet.py's account of what the wallet's lock is held for."""

from collections import Counter

from bench.hot_wallet import LockSampler, statement_label


def test_the_wallets_lock_is_named_and_other_statements_cut_to_their_first_words():
    lock = "\n  SELECT w.id, w.beneficiary_id\n  FROM wallet_paymentcode c ... FOR UPDATE OF w\n"
    long = "WITH w0 AS (UPDATE wallet_paymentcode SET status = $1) " + "x" * 200

    assert statement_label(lock) == "the wallet's lock: SELECT w.id, w.beneficiary_id FROM walle"
    assert statement_label(long) == long[:70]
    assert statement_label("COMMIT") == "COMMIT"


def test_the_hold_per_payment_is_the_time_someone_waited_shared_by_what_the_holder_did(capsys):
    sampler = LockSampler("postgresql://unused")
    sampler.samples, sampler.held = 1000, 800
    sampler.seen = Counter(
        {
            ("idle in transaction", "Client:ClientRead", "SELECT the read"): 600,
            ("active", "IO:WALSync", "COMMIT"): 200,
        }
    )

    # 10 s, a till waiting 80 % of it, 1,000 payments: 8 ms each, 6 in Python, 2 at COMMIT.
    sampler.report(payments=1000, elapsed=10.0)
    out = capsys.readouterr().out

    assert "a till waiting in 80%" in out
    assert "the lock held about 8.0 ms per payment" in out
    python, commit = out.splitlines()[1:3]
    assert python.split()[:3] == ["75.0%", "6.0", "ms"]
    assert "in its Python, after" in python and python.endswith("SELECT the read")
    assert commit.split()[:5] == ["25.0%", "2.0", "ms", "active", "IO:WALSync"]
