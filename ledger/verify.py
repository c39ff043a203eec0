"""Recompute the ledger's invariants from its immutable records. Run by `manage.py ledger verify`
and nightly by Celery; the tests run it after every concurrent scenario.

Every check reads every row, so each is one set-based statement that reads each table it needs
once (a sequential scan, or an index in its order) and joins or groups in the database: at a
million people (32 million transfers, 22 million entries, 3 million accounts) a statement per
account, or a join per entry to its transfer, took twelve minutes. Only the rows that break an
invariant come back to Python."""

from dataclasses import dataclass

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import F

from ledger.models import Account, Entry, Spending, Transfer
from ledger.spending import EXPECTED_POSTGRESQL, expected_rows

# PostgreSQL's default (4 MB) makes each grouping and hash join of a full check spill to disk
# in many batches; a check is one session at night, it can take more.
VERIFY_WORK_MEM = "256MB"


@dataclass(frozen=True)
class Problem:
    subject: str  # "account <code>" or "transfer #<id>"
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


def verify() -> list[Problem]:
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SET LOCAL work_mem = '{VERIFY_WORK_MEM}'")
        return [
            *_entries_by_transfer(cursor),
            *_resolutions(cursor),
            *_refunds(cursor),
            *_accounts(cursor),
            *_spending(cursor),
        ]


def _entries_by_transfer(cursor: CursorWrapper) -> list[Problem]:
    """Each transfer with entries: they sum to zero, are all in its currency, and it is not a
    hold. One pass over the entries (with their accounts' currencies), grouped by transfer,
    then joined to the transfers."""
    cursor.execute(
        f"""
        SELECT t.id, t.is_pending, x.total, (x.low <> t.currency OR x.high <> t.currency)
        FROM (SELECT e.transfer_id, SUM(e.amount) AS total, MIN(a.currency) AS low,
                     MAX(a.currency) AS high
              FROM {Entry._meta.db_table} e JOIN {Account._meta.db_table} a
                ON a.id = e.account_id
              GROUP BY e.transfer_id) x
        JOIN {Transfer._meta.db_table} t ON t.id = x.transfer_id
        WHERE x.total <> 0 OR t.is_pending OR x.low <> t.currency OR x.high <> t.currency
        ORDER BY t.id"""
    )
    rows = cursor.fetchall()
    unbalanced = [
        Problem(f"transfer #{pk}", f"entries sum to {total}, not 0")
        for pk, _hold, total, _mixed in rows
        if total != 0
    ]
    # The entries of the few transfers whose currencies differ, named one by one.
    mixed = [pk for pk, _hold, _total, other_currency in rows if other_currency]
    wrong_currency = [
        Problem(f"transfer #{pk}", f"entry on {code} is in another currency")
        for pk, code in Entry.objects.filter(transfer_id__in=mixed)
        .exclude(account__currency=F("transfer__currency"))
        .order_by("transfer_id", "pk")
        .values_list("transfer_id", "account__code")
    ]
    holds_with_entries = [
        Problem(f"transfer #{pk}", "a hold must not have entries")
        for pk, hold, _total, _mixed in rows
        if hold
    ]
    return unbalanced + wrong_currency + holds_with_entries


def _resolutions(cursor: CursorWrapper) -> list[Problem]:
    """Each capture, void or expiry resolves a hold, and a capture takes no more than its
    hold: the resolving transfers joined to what they resolve."""
    resolving = list(Transfer.RESOLVING_KINDS)
    cursor.execute(
        f"""
        SELECT r.id, r.kind = %s AND r.amount > h.amount,
            NOT h.is_pending OR r.kind NOT IN ({", ".join(["%s"] * len(resolving))})
        FROM {Transfer._meta.db_table} r JOIN {Transfer._meta.db_table} h
          ON h.id = r.pending_transfer_id
        WHERE (r.kind = %s AND r.amount > h.amount) OR NOT h.is_pending
           OR r.kind NOT IN ({", ".join(["%s"] * len(resolving))})
        ORDER BY r.id""",
        [Transfer.Kind.CAPTURE, *resolving, Transfer.Kind.CAPTURE, *resolving],
    )
    rows = cursor.fetchall()
    return [
        Problem(f"transfer #{pk}", "captures more than its hold") for pk, over, _bad in rows if over
    ] + [
        Problem(f"transfer #{pk}", "resolves something that is not a hold")
        for pk, _over, bad in rows
        if bad
    ]


def _refunds(cursor: CursorWrapper) -> list[Problem]:
    """No transfer is refunded more than its amount (the few refunds, through their index)."""
    cursor.execute(
        f"""
        SELECT t.id, x.refunded, t.amount
        FROM (SELECT refund_of_id, SUM(amount) AS refunded FROM {Transfer._meta.db_table}
              WHERE refund_of_id IS NOT NULL GROUP BY refund_of_id) x
        JOIN {Transfer._meta.db_table} t ON t.id = x.refund_of_id
        WHERE x.refunded > t.amount
        ORDER BY t.id"""
    )
    return [
        Problem(f"transfer #{pk}", f"refunded {refunded}, more than its {amount}")
        for pk, refunded, amount in cursor.fetchall()
    ]


def _accounts(cursor: CursorWrapper) -> list[Problem]:
    """A guarded account's balance is the sum of its entries, what it holds the sum of its open
    holds, and it is not negative; an account that is not guarded keeps no running balance.
    The entries grouped by account and the open holds (holds no transfer resolves) by the
    account they debit, each in one pass, joined to the accounts."""
    cursor.execute(
        f"""
        SELECT a.code, a.guarded, a.balance, a.pending, COALESCE(e.total, 0),
            COALESCE(h.total, 0)
        FROM {Account._meta.db_table} a
        LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM {Entry._meta.db_table}
                   GROUP BY account_id) e ON e.account_id = a.id
        LEFT JOIN (SELECT t.debit_account_id, SUM(t.amount) AS total
                   FROM {Transfer._meta.db_table} t
                   WHERE t.is_pending AND NOT EXISTS (
                       SELECT 1 FROM {Transfer._meta.db_table} r
                       WHERE r.pending_transfer_id = t.id)
                   GROUP BY t.debit_account_id) h ON h.debit_account_id = a.id
        WHERE (a.guarded AND (a.balance <> COALESCE(e.total, 0)
                              OR a.pending <> COALESCE(h.total, 0) OR a.balance < a.pending))
           OR (NOT a.guarded AND (a.balance <> 0 OR a.pending <> 0))
        ORDER BY a.id"""
    )
    rows = cursor.fetchall()
    guarded = [row for row in rows if row[1]]
    problems = []
    for code, _guarded, balance, pending, entries_total, held_total in guarded:
        if balance != entries_total:
            problems.append(
                Problem(
                    f"account {code}",
                    f"balance {balance} but its entries sum to {entries_total}",
                )
            )
        if pending != held_total:
            problems.append(
                Problem(f"account {code}", f"held {pending} but its open holds sum to {held_total}")
            )
    problems += [
        Problem(f"account {code}", f"negative: balance {balance}, held {pending}")
        for code, _guarded, balance, pending, _entries, _held in guarded
        if balance < pending
    ]
    problems += [
        Problem(f"account {code}", "keeps a running balance but is not guarded")
        for code, is_guarded, *_rest in rows
        if not is_guarded
    ]
    return problems


def _spending(cursor: CursorWrapper) -> list[Problem]:
    """Each account's spending per Paris day, month and year (Spending, kept as holds change)
    is what the scan of its holds makes it: on PostgreSQL the scan grouped in the database and
    joined to the rows kept, only the rows that differ coming back; on SQLite compared here."""
    if cursor.db.vendor == "postgresql":
        cursor.execute(
            f"""
            SELECT a.code, x.grain, x.start, x.kept, x.expected
            FROM (SELECT COALESCE(s.account_id, e.account_id) AS account_id,
                         COALESCE(s.grain, e.grain) AS grain, COALESCE(s.start, e.start) AS start,
                         COALESCE(s.net, 0) AS kept, COALESCE(e.net, 0) AS expected
                  FROM {Spending._meta.db_table} s
                  FULL JOIN ({EXPECTED_POSTGRESQL}) e (account_id, grain, start, net)
                    ON e.account_id = s.account_id AND e.grain = s.grain AND e.start = s.start
                  WHERE COALESCE(s.net, 0) <> COALESCE(e.net, 0)) x
            JOIN {Account._meta.db_table} a ON a.id = x.account_id
            ORDER BY a.id, x.grain, x.start"""
        )
        rows = cursor.fetchall()
    else:
        expected = expected_rows(cursor.db)
        kept = {
            (account_id, grain, start): net
            for account_id, grain, start, net in Spending.objects.values_list(
                "account_id", "grain", "start", "net"
            )
        }
        codes = dict(Account.objects.values_list("id", "code"))
        rows = [
            (codes[key[0]], key[1], key[2], kept.get(key, 0), expected.get(key, 0))
            for key in sorted(expected.keys() | kept.keys())
            if kept.get(key, 0) != expected.get(key, 0)
        ]
    return [
        Problem(
            f"account {code}",
            f"spending of the {grain} from {start} kept as {kept} but its holds net {expected}",
        )
        for code, grain, start, kept, expected in rows
    ]
