/**
 * The embedded queue's agent desktop driven over HTTP, as its page drives
 * it (see tests/src/desk.rs): a session cookie from signing in, and the
 * CSRF token sent with every change. Loopback only; every call bounded.
 */

const WAIT_MS = 30_000;

export class Desk {
  readonly #base: string;
  readonly #cookie: string;
  readonly #csrf: string;

  private constructor(base: string, cookie: string, csrf: string) {
    this.#base = base;
    this.#cookie = cookie;
    this.#csrf = csrf;
  }

  /** Signs `name` in at the desktop served at `base` (`http://host:port`). */
  static async signIn(base: string, name: string, password: string): Promise<Desk> {
    const response = await fetch(`${base}/api/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name, password }),
      signal: AbortSignal.timeout(WAIT_MS),
    });
    if (!response.ok) {
      throw new Error(`sign-in of ${name}: ${response.status}`);
    }
    const cookie = (response.headers.get("set-cookie") ?? "").split(";")[0];
    const body = (await response.json()) as { csrf_token?: string };
    if (!cookie || !body.csrf_token) {
      throw new Error("the sign-in gave no session cookie or CSRF token");
    }
    return new Desk(base, cookie, body.csrf_token);
  }

  /** A change as the page sends it, with its CSRF token; the status. */
  async change(method: string, path: string, body: unknown = {}): Promise<number> {
    const response = await fetch(`${this.#base}${path}`, {
      method,
      headers: { "content-type": "application/json", cookie: this.#cookie, "x-csrf-token": this.#csrf },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(WAIT_MS),
    });
    await response.arrayBuffer();
    return response.status;
  }

  /** The agent is available: offered what the queue routes to them. */
  async available(): Promise<void> {
    const status = await this.change("PUT", "/api/agent/state", { state: "available" });
    if (status >= 300) {
      throw new Error(`available: ${status}`);
    }
  }

  /**
   * Accepts `handoffId` once it is offered: tries until the desktop takes
   * it (bounded).
   */
  async accept(handoffId: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    let status = 0;
    while (Date.now() < deadline) {
      status = await this.change("POST", `/api/handoffs/${handoffId}/accept`);
      if (status < 300) {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`accept ${handoffId}: ${status}`);
  }

  /**
   * Waits (bounded) until the chat pane of `handoffId` opens for this
   * agent: accepted, the conversation reaches the desk a moment later.
   */
  async chatOpen(handoffId: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    let status = 0;
    while (Date.now() < deadline) {
      const response = await fetch(`${this.#base}/api/chats/${handoffId}`, {
        headers: { cookie: this.#cookie },
        signal: AbortSignal.timeout(WAIT_MS),
      });
      await response.arrayBuffer();
      status = response.status;
      if (response.ok) {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`the chat of ${handoffId}: ${status}`);
  }

  /** The agent writes in the chat pane (a retry keeps `id`). */
  async write(handoffId: string, id: string, text: string): Promise<number> {
    return this.change("POST", `/api/chats/${handoffId}/messages`, { id, text });
  }

  /** The agent completes the contact. */
  async wrapUp(handoffId: string): Promise<number> {
    return this.change("POST", `/api/handoffs/${handoffId}/wrap-up`, { disposition: "resolved" });
  }
}
