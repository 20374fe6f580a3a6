/**
 * What an operator should hear when `--spread-by LABEL` cannot be honoured by the cluster as it is:
 * replicas go to distinct LABEL domains, never the owner's, and a host without the label is never
 * chosen. Accepting the policy is right (hosts may be labelled later); saying nothing is not.
 */
export function spreadAdvice (hosts: ReadonlyArray<{ labels: Record<string, string>, liveness: string }>, key: string, replicas: number): string | undefined {
  if (key === '' || replicas <= 0) return undefined
  const live = hosts.filter((h) => h.liveness !== 'dead')
  const domains = new Set(live.filter((h) => Object.hasOwn(h.labels, key)).map((h) => h.labels[key]))
  if (domains.size === 0) return `warning: no host has a '${key}' label, so no replica can be placed yet: label hosts with --label ${key}=VALUE (meshvirt host ls shows the labels)`
  if (domains.size >= replicas + 1) return undefined
  const placeable = domains.size - 1
  return `warning: the cluster has ${domains.size} '${key}' domain${domains.size === 1 ? '' : 's'}; ${replicas} replica${replicas === 1 ? '' : 's'} away from the owner's need ${replicas + 1}: ${placeable === 0 ? 'none' : `only ${placeable}`} can be placed until more hosts carry the label`
}
