import { describe, expect, it } from 'vitest';
import { MissingSystemToolError, systemTool } from './helpers/system-tools.js';

// What a newcomer sees when a server the tests run is not installed (test/helpers/system-tools.ts).
describe('a missing system tool', () => {
  it('fails naming the program, the Debian package and the setup command', () => {
    const attempt = () => systemTool('dnsmasq', { DNSMASQ: '/nonexistent/dnsmasq' });
    expect(attempt).toThrow(MissingSystemToolError);
    expect(attempt).toThrow('dnsmasq is not installed ($DNSMASQ is /nonexistent/dnsmasq, which is not an executable)');
    expect(attempt).toThrow('Install it with the setup command, `npm run setup` (it runs `apt-get install -y dnsmasq-base`).');
  });

  it('is looked for on PATH (and in the sbin directories)', () => {
    expect(() => systemTool('redis-server', { PATH: '/nonexistent' })).toThrow(
      /redis-server is not installed \(not on PATH nor in \/usr\/sbin or \/sbin\).*apt-get install -y redis-server/,
    );
    expect(systemTool('ss', { PATH: '/usr/bin:/bin' })).toMatch(/\/ss$/);
  });
});
