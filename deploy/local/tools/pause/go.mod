// The node's sandbox ("pause") program: holds a pod's namespaces, reaps orphans, exits on
// SIGINT or SIGTERM. Standard library only.
module pulse.local/tools/pause

go 1.26.0
