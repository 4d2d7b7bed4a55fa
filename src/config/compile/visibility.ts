/**
 * Istio's `exportTo`: `*` (every namespace, the default), `.` (the resource's own namespace), `~`
 * (none), or namespace names. Unset means the mesh default, which is `*` unless configured.
 */
export function isExportedTo(
  exportTo: readonly string[] | undefined,
  ownNamespace: string,
  callerNamespace: string,
  defaultExportTo: readonly string[] = ['*'],
): boolean {
  const list = exportTo && exportTo.length > 0 ? exportTo : defaultExportTo;
  for (const entry of list) {
    if (entry === '*') return true;
    if (entry === '~') continue;
    if (entry === '.' ? ownNamespace === callerNamespace : entry === callerNamespace) return true;
  }
  return false;
}

/**
 * Istio indexes VirtualServices by how they are visible to a namespace, and that order decides
 * which one wins a host: private to the caller's namespace, then exported to it by name, then
 * public. Lower rank wins.
 */
export function exportRank(
  exportTo: readonly string[] | undefined,
  ownNamespace: string,
  callerNamespace: string,
  defaultExportTo: readonly string[] = ['*'],
): number {
  const list = exportTo && exportTo.length > 0 ? exportTo : defaultExportTo;
  if (list.includes('*')) return 2;
  return ownNamespace === callerNamespace ? 0 : 1;
}
