"""The double-entry ledger: accounts, immutable transfers and their entries, two-phase holds.

Vocabulary (after TigerBeetle): an **account** holds money in one currency; a **transfer** moves
money between accounts through **entries** that sum to zero; a **hold** is a pending transfer that
reserves money on one account until it is **posted** (captured, whole or part), **voided** or
**expired**. Nothing here is ever updated or deleted except the running balances of guarded
accounts, which `verify` recomputes from the entries.
"""
