export { inspectMesh } from './inspect-mesh.js';
export type { InspectionInputs } from './inspect-mesh.js';
export type * from './inspection.js';
export { ADMIN_PATHS, createAdminHandler, statsOf } from './admin-handler.js';
export type { AdminSource } from './admin-handler.js';
export { AdminOptionError } from './admin-option-error.js';
// startAdminServer: import it from './admin-server.js' when needed (it loads node:http).
export type { AdminServer, AdminServerOptions } from './admin-server.js';
export { consoleLogger, silentLogger } from './logger.js';
export type { ConsoleLike, MeshLogger } from './logger.js';
export { logMeshEvents } from './mesh-events-log.js';
export { MESH_LOG_EVENTS } from './log-events.js';
export type { MeshLogEvent } from './log-events.js';
export { clustersText, configText, endpointsText, routesText } from './text-tables.js';
