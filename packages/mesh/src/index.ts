import "./polyfill.js"
// @meshvirt/mesh — first content lands with its issue.
export {}
