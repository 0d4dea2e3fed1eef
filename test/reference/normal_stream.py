#!/usr/bin/env python3
"""Independent reference for rosetta::NormalStream (include/rosetta/core/rng.hpp).

Re-implements the generator from its description with Python integers and float64 libm:
splitmix64 seeding, Rng(seed, stream), 8 xoshiro256** lanes seeded from one parent draw,
8 steps per block, Box-Muller on (top 24 bits, next 24 bits) of each word, the block
holding the 64 cosine outputs then the 64 sine outputs. rosetta computes log/sin/cos with
float polynomials of its own, so the C++ test compares against these values with a float
tolerance, not bit for bit.

Usage: normal_stream.py SEED STREAM COUNT  -> one value per line (repr of a float64).
"""
import math
import sys

M64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class Xoshiro:
    def __init__(self, words):
        self.s = list(words)

    def next(self):
        s = self.s
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result


def rng(seed, stream):
    sm = (seed ^ ((stream * 0xD1B54A32D192ED03) & M64)) & M64
    words = []
    for _ in range(4):
        sm, w = splitmix64(sm)
        words.append(w)
    return Xoshiro(words)


def normal_stream(seed, stream, count):
    parent = rng(seed, stream)
    sm = parent.next()
    lanes = []
    for _ in range(8):
        words = []
        for _ in range(4):
            sm, w = splitmix64(sm)
            words.append(w)
        lanes.append(Xoshiro(words))
    out = []
    while len(out) < count:
        xs = [lane.next() for _step in range(8) for lane in lanes]
        cos_part, sin_part = [], []
        for x in xs:
            u1 = ((x >> 40) + 1) * 2.0**-24
            j = (x >> 16) & 0xFFFFFF
            r = math.sqrt(-2.0 * math.log(u1))
            a = 2.0 * math.pi * j * 2.0**-24
            cos_part.append(r * math.cos(a))
            sin_part.append(r * math.sin(a))
        out.extend(cos_part + sin_part)
    return out[:count]


if __name__ == "__main__":
    seed, stream, count = (int(a) for a in sys.argv[1:4])
    for v in normal_stream(seed, stream, count):
        print(repr(v))
