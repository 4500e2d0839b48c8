"""Placeholder replaced below."""


def main(argv):
    return 2
