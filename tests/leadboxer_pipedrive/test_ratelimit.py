from leadboxer_pipedrive.ratelimit import SlidingWindowLimiter


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_limiter_admits_limit_per_window_then_waits_for_the_oldest_to_leave():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(3, 2.0, clock=clock, sleep=clock.sleep)
    waits = [limiter.acquire() for _ in range(3)]
    assert waits == [0.0, 0.0, 0.0]
    assert limiter.acquire() == 2.0 and clock.now == 2.0


def test_any_window_holds_at_most_limit_acquisitions():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(5, 2.0, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(40):
        limiter.acquire()
        stamps.append(clock.now)
        clock.now += 0.05
    for stamp in stamps:
        assert sum(1 for s in stamps if stamp <= s < stamp + 2.0) <= 5


def test_pause_blocks_everyone_until_it_ends():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(10, 2.0, clock=clock, sleep=clock.sleep)
    limiter.pause(1.5)
    assert limiter.acquire() >= 1.5 and clock.now >= 1.5
