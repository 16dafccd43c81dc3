"""The research tools, built on the paper layer through its hook points: gradient flow across
positions (:mod:`.gradflow`), computation paths and cones (:mod:`.paths`), myopic training
(:mod:`.myopia`, and its brute-force definition :mod:`.untied`), linear probes (:mod:`.probes`)
and count-based n-gram baselines (:mod:`.baselines`). Nothing in the paper layer imports them."""
