import time


def retry(times, delay=0.0):
    def wrap(func):
        def inner(*args, **kwargs):
            last = None
            for attempt in range(times):
                try:
                    return func(*args, **kwargs)
                except OSError as error:
                    last = error
                    if delay:
                        time.sleep(delay * (attempt + 1))
            raise last

        return inner

    return wrap


class Budget:
    def __init__(self, limit):
        self.limit = limit
        self.spent = 0

    def spend(self, amount):
        if self.spent + amount > self.limit:
            return False
        self.spent += amount
        return True
