"""The weighted fair queue's order (routing/fair_queue.py): shares follow weights and token cost
whatever the number of requests a tenant sends, nobody starves, memory stays bounded."""

from __future__ import annotations

from gatecore.routing.fair_queue import FairQueue


def drain(queue: FairQueue[str]) -> list[str]:
    order = []
    while queue.peek() is not None:
        order.append(queue.pop().item)
    return order


def test_a_late_quiet_tenant_goes_ahead_of_a_flood() -> None:
    queue: FairQueue[str] = FairQueue(100)
    for _ in range(4):
        queue.pass_through("flood", 1.0, 100)  # the pool filled by the flood first
    for i in range(20):
        queue.push("flood", "batch", 1.0, 100, f"flood-{i}")
    queue.push("quiet", "batch", 1.0, 10, "quiet-0")
    assert drain(queue)[0] == "quiet-0"


def test_shares_follow_weights_on_token_cost() -> None:
    queue: FairQueue[str] = FairQueue(1000)
    for _ in range(100):
        queue.push("a", "interactive", 4.0, 100, "a")
        queue.push("b", "batch", 1.0, 100, "b")
    first = drain(queue)[:50]
    assert first.count("a") == 40 and first.count("b") == 10  # 4:1
    # Cost counts too: a tenant of requests 4x as long gets a quarter of the turns at equal weight.
    for _ in range(100):
        queue.push("long", "batch", 1.0, 400, "long")
        queue.push("short", "batch", 1.0, 100, "short")
    first = drain(queue)[:50]
    assert first.count("short") == 40


def test_no_one_starves_and_leaving_frees_the_place() -> None:
    queue: FairQueue[str] = FairQueue(3)
    low = queue.push("low", "batch", 1.0, 1000, "low")
    queue.push("high", "interactive", 1000.0, 1, "high-0")
    queue.push("high", "interactive", 1000.0, 1, "high-1")
    assert queue.full
    order = drain(queue)
    assert order[-1] == "low" and low.left
    # A steady stream of heavier-weighted requests still lets the low one through once V passes it.
    queue = FairQueue(1000)
    queue.push("low", "batch", 1.0, 50, "low")
    served = []
    for i in range(200):
        queue.push("high", "interactive", 10.0, 50, f"high-{i}")
        served.append(queue.pop().item)
    assert "low" in served
    gone = queue.push("x", "batch", 1.0, 1, "gone")
    waiting = queue.waiting
    queue.leave(gone)
    assert queue.waiting == waiting - 1 and queue.counts.get(("x", "batch")) is None
