"""One question in, one reply out: the knowledge base (YAML loading and checks), text
normalisation, the matcher, small talk, the answer policy, the composer that fits a reply to a
platform, the desk that ties them together, and the quality evaluation. Pure functions, no I/O
beyond reading the knowledge folder. May import: platform, runtime.
"""
