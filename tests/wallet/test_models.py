from funders.models import Allocation
from tests.factories import make_allocation, make_program
from wallet.models import Pocket
from wallet.models.wallets import SPENDABLE_ALLOCATION_STATUS


def test_the_wallet_names_the_funders_active_status_by_its_value():
    assert SPENDABLE_ALLOCATION_STATUS == Allocation.Status.ACTIVE


def test_only_the_pockets_of_active_grants_are_spendable(db):
    program = make_program()
    active = make_allocation(program=program, amount=1_000)
    revoked = make_allocation(program=program, amount=1_000)
    Allocation.objects.filter(pk=revoked.pk).update(status=Allocation.Status.REVOKED)

    assert list(
        Pocket.objects.spendable().filter(pk__in=[active.pocket.pk, revoked.pocket.pk])
    ) == [active.pocket]
