/**
 * A real `baton dev` for the tests: every listener on a free loopback port,
 * its data in a temporary directory, its address and API key read from the
 * banner. Nothing is mocked: the client talks to the control service, which
 * routes to the embedded queue (nobody signed in: NO_AGENTS) and then to the
 * scripted demo contact center.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

const PORT_FLAGS = [
  "--grpc-listen",
  "--http-listen",
  "--queue-listen",
  "--desktop-listen",
  "--sip-listen",
  "--sip-bind",
  "--demo-listen",
];

export class BatonDev {
  readonly address: string;
  readonly apiKey: string;
  /** The embedded queue's agent desktop (`http://127.0.0.1:port`). */
  readonly desktop: string;
  /** The desktop sign-in of the agent `agent` (skill `support`), new each start. */
  readonly agentPassword: string;
  /** The throwaway CA that signed the service's certificate, with `tls`. */
  readonly caFile: string | undefined;
  readonly #process: ChildProcess;
  readonly #dir: string;

  private constructor(process: ChildProcess, dir: string, banner: Banner, tls: boolean) {
    this.#process = process;
    this.#dir = dir;
    this.address = banner.address;
    this.apiKey = banner.apiKey;
    this.desktop = banner.desktop;
    this.agentPassword = banner.agentPassword;
    this.caFile = tls ? join(dir, "tls", "ca.pem") : undefined;
  }

  /** Starts `baton dev`; with `tls`, every listener serves TLS (`--tls`). */
  static async start({ tls = false, timeoutMs = 60_000 } = {}): Promise<BatonDev> {
    const binary =
      process.env.BATON_BIN || resolve(import.meta.dirname ?? ".", "../../../../target/release/baton");
    const dir = mkdtempSync(join(tmpdir(), "baton-typescript-client-"));
    const args = ["dev", "--data-dir", dir, ...(tls ? ["--tls"] : [])];
    for (const flag of PORT_FLAGS) {
      args.push(flag, "127.0.0.1:0");
    }
    const log = openSync(join(dir, "baton-dev.log"), "w");
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", log] });
    closeSync(log);
    const logTail = (): string => {
      try {
        return readFileSync(join(dir, "baton-dev.log"), "utf8").slice(-4000);
      } catch {
        return "";
      }
    };
    try {
      return new BatonDev(child, dir, await readBanner(child, timeoutMs, logTail), tls);
    } catch (error) {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  async stop(): Promise<void> {
    const child = this.#process;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((done) => child.once("exit", () => done()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

interface Banner {
  address: string;
  apiKey: string;
  desktop: string;
  agentPassword: string;
}

function readBanner(child: ChildProcess, timeoutMs: number, logTail: () => string): Promise<Banner> {
  return new Promise((resolvePromise, reject) => {
    let address: string | undefined;
    let apiKey: string | undefined;
    // Printed before the control service's ready line, which ends the banner.
    let desktop = "";
    let agentPassword = "";
    const fail = (why: string): void => {
      clearTimeout(timer);
      reject(new Error(`baton dev did not start (${why}); its log:\n${logTail()}`));
    };
    const timer = setTimeout(() => fail("timed out"), timeoutMs);
    child.once("error", (error) => fail(String(error)));
    child.once("exit", (code, signal) => fail(`exited: ${code ?? signal}`));
    // Every line is read to the end, so that a full pipe never blocks it.
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      if (address !== undefined && apiKey !== undefined) {
        return;
      }
      const key = /export BATON_API_KEY=(bk_\S+)/.exec(line);
      if (key) {
        apiKey = key[1];
      }
      const desk = /^\s*agent desktop\s+(https?:\/\/[^/\s]+)/.exec(line);
      if (desk) {
        desktop = desk[1]!;
      }
      const signIn = /^\s*agent\s+agent \/ (\S+)/.exec(line);
      if (signIn) {
        agentPassword = signIn[1]!;
      }
      if (line.startsWith("{")) {
        try {
          const ready = (JSON.parse(line) as { ready?: { service?: string; grpc?: string } }).ready;
          if (ready?.service === "baton-control" && ready.grpc) {
            address = ready.grpc;
          }
        } catch {
          // Not the ready line.
        }
      }
      if (address !== undefined && apiKey !== undefined) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolvePromise({ address, apiKey, desktop, agentPassword });
      }
    });
  });
}

/**
 * A TCP proxy on loopback in front of `upstream` whose connections the test
 * can cut at once, as a load balancer or a network fault would: the client
 * sees its stream break and must reconnect.
 */
export class CuttableProxy {
  accepted = 0;
  readonly #server: Server;
  #sockets: Socket[] = [];

  private constructor(server: Server) {
    this.#server = server;
  }

  get address(): string {
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  static async start(upstream: string): Promise<CuttableProxy> {
    const separator = upstream.lastIndexOf(":");
    const host = upstream.slice(0, separator);
    const port = Number(upstream.slice(separator + 1));
    const server = createServer();
    const proxy = new CuttableProxy(server);
    server.on("connection", (client) => {
      const service = createConnection({ host, port });
      proxy.accepted += 1;
      proxy.#sockets.push(client, service);
      for (const [source, sink] of [
        [client, service],
        [service, client],
      ] as const) {
        source.pipe(sink);
        source.on("error", () => sink.destroy());
        source.on("close", () => sink.destroy());
      }
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    return proxy;
  }

  /** Resets every open connection; new ones are still accepted. */
  cut(): void {
    const sockets = this.#sockets;
    this.#sockets = [];
    for (const socket of sockets) {
      socket.resetAndDestroy();
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((done) => this.#server.close(() => done()));
  }
}
