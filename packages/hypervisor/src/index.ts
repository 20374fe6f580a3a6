// @meshvirt/hypervisor — first content lands with its issue.
export {}
