"""flops (to do)"""


def add_arguments(p):
    pass


def run(a):
    raise NotImplementedError
