"""``migrate check``: staging databases, a fixed workload before and after, a verdict.

``staging`` prepares the two databases and ``dataset`` their data; ``queries``, ``reads`` and
``inserts`` are the workload and what is measured; ``layout`` controls the tables' parts;
``figures`` and ``report`` judge; ``check`` is the whole step.
"""
