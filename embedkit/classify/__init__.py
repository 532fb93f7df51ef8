"""Downstream use of what embedkit pretrains: a fastText-style supervised classifier, linear probes
on frozen features, and the labelled-data reader they share."""
