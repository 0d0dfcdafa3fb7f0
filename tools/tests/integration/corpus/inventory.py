"""Inventory of parts kept in a small warehouse."""

import json
from dataclasses import dataclass, field


@dataclass
class Part:
    name: str
    count: int = 0
    tags: list = field(default_factory=list)

    def restock(self, amount):
        if amount <= 0:
            raise ValueError("amount must be positive")
        self.count += amount
        return self.count

    def take(self, amount):
        if amount > self.count:
            return False
        self.count -= amount
        return True


class Inventory:
    def __init__(self):
        self.parts = {}

    def add(self, part):
        if part.name in self.parts:
            self.parts[part.name].restock(part.count)
        else:
            self.parts[part.name] = part

    def low(self, threshold=5):
        result = []
        for part in self.parts.values():
            if part.count < threshold:
                result.append(part.name)
        return sorted(result)

    def to_json(self):
        return json.dumps(
            {name: part.count for name, part in self.parts.items()},
            sort_keys=True,
        )
