// @meshvirt/placement — first content lands with its issue.
export {}
