"""The quick start's demo data: built twice, it is the same demo."""

from demo.build import demo_build
from funders.models import Allocation, Proposal


def test_the_demo_builds_twice_with_a_campaign_waiting_for_decisions(db):
    demo_build(password="demo-password")
    allocations = Allocation.objects.count()
    proposals = list(Proposal.objects.values_list("beneficiary", "status"))

    demo_build(password="demo-password")

    assert Allocation.objects.count() == allocations
    assert sorted(Proposal.objects.values_list("beneficiary", "status")) == sorted(proposals)
    assert proposals and {status for _, status in proposals} == {Proposal.Status.PENDING}
