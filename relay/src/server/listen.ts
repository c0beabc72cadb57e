import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Binds an HTTP server and resolves with the real port (0 asks the OS for one); a bind error rejects. */
export async function listenOn(http: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  return (http.address() as AddressInfo).port;
}
