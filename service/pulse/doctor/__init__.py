"""``pulse doctor``: check a deployed Pulse stack end to end and say how to fix what is wrong.

``checks`` holds the backend checks (Pulse serving, collector exporting, Pulse's traces, metrics
and logs stored), written against a ``Backends`` transport; ``kube`` adds the Kubernetes checks
(workloads rolled out and ready) and reaches the backends through the API server's service
proxy or in-cluster DNS; ``report`` prints the checklist.
"""
