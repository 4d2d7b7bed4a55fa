import { MeshError } from '../errors.js';

/** A bad `serveAdmin` option, such as a non-loopback host without `allowRemote`. */
export class AdminOptionError extends MeshError {
  readonly code = 'ERR_MESH_ADMIN_OPTION';
}
