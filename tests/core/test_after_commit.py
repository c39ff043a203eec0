"""core.after_commit: rows handed over after their transaction commits, in batches inside a
together() block, alone outside one; nothing for a row rolled back."""

import pytest
from django.db import transaction

from core import after_commit


class Receiver:
    """A hand-over function that records each batch it is given."""

    def __init__(self):
        self.batches: list[list[int]] = []

    def __call__(self, rows: list[int]) -> None:
        self.batches.append(list(rows))


def write(receiver: Receiver, rows, *, size: int = 3) -> None:
    with transaction.atomic():
        for row in rows:
            after_commit.hand_over(row, to=receiver, size=size)


@pytest.mark.django_db(transaction=True)
def test_outside_a_block_each_row_is_handed_over_alone_at_its_commit():
    receiver = Receiver()
    with transaction.atomic():
        after_commit.hand_over(1, to=receiver, size=3)
        after_commit.hand_over(2, to=receiver, size=3)
        assert receiver.batches == []
    assert receiver.batches == [[1], [2]]


@pytest.mark.django_db(transaction=True)
def test_a_block_of_transactions_hands_over_batches_as_they_commit_and_the_rest_at_its_end():
    receiver = Receiver()
    with after_commit.together():
        write(receiver, [1, 2])
        assert receiver.batches == []
        write(receiver, [3, 4])
        assert receiver.batches == [[1, 2, 3]]  # a full batch leaves at once
        write(receiver, [5])
        assert receiver.batches == [[1, 2, 3]]
    assert receiver.batches == [[1, 2, 3], [4, 5]]


@pytest.mark.django_db(transaction=True)
def test_a_block_in_one_transaction_hands_over_at_its_commit_and_never_on_a_rollback():
    receiver = Receiver()
    with transaction.atomic():
        with after_commit.together():
            write(receiver, [1, 2])
        assert receiver.batches == []
    assert receiver.batches == [[1, 2]]

    with pytest.raises(RuntimeError), transaction.atomic():
        with after_commit.together():
            write(receiver, [3, 4])
        raise RuntimeError("rolled back")
    assert receiver.batches == [[1, 2]]


@pytest.mark.django_db(transaction=True)
def test_a_row_whose_savepoint_rolls_back_is_not_handed_over():
    receiver = Receiver()
    with after_commit.together(), transaction.atomic():
        after_commit.hand_over(1, to=receiver, size=3)
        with pytest.raises(RuntimeError), transaction.atomic():
            after_commit.hand_over(2, to=receiver, size=3)
            raise RuntimeError("this row's savepoint rolls back")
        after_commit.hand_over(3, to=receiver, size=3)
    assert receiver.batches == [[1, 3]]


@pytest.mark.django_db(transaction=True)
def test_what_committed_before_an_error_leaves_the_block_is_handed_over():
    receiver = Receiver()
    with pytest.raises(RuntimeError), after_commit.together():
        write(receiver, [1, 2])
        raise RuntimeError("the loop stops")
    assert receiver.batches == [[1, 2]]


@pytest.mark.django_db(transaction=True)
def test_an_inner_block_is_part_of_the_outer_one():
    receiver, other = Receiver(), Receiver()
    with after_commit.together():
        with after_commit.together():
            write(receiver, [1])
            write(other, [7])
        write(receiver, [2])
        assert receiver.batches == other.batches == []
    assert (receiver.batches, other.batches) == ([[1, 2]], [[7]])
