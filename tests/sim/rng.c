/*
 * rng.c — the run's pseudo-random generator (splitmix64). Each run owns one
 * state word, seeded from the seed alone; every random choice of the
 * simulator draws from it, in event order, so a seed replays exactly.
 */
#include "sim.h"

uint64_t sim_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t sim_range(uint64_t *state, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + sim_rand(state) % (hi - lo + 1);
}

bool sim_chance(uint64_t *state, unsigned per_mille)
{
    return sim_rand(state) % 1000 < per_mille;
}
