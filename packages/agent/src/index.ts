// @meshvirt/agent — first content lands with its issue.
export {}
