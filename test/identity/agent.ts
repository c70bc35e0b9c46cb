/**
 * A minimal user agent for driving the sign-in pages over plain HTTP: a cookie jar, manual redirects and
 * a form reader. The Chromium test drives the same pages with a real browser.
 */
export interface Page {
  url: string;
  status: number;
  html: string;
}

export class Agent {
  private jar = new Map<string, string>();

  private cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  private keep(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair!.indexOf("=");
      const name = pair!.slice(0, i);
      const value = pair!.slice(i + 1);
      if (value === "" || /expires=Thu, 01 Jan 1970/i.test(c)) this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }

  dropCookie(name: string): void {
    this.jar.delete(name);
  }

  /** Requests `url` and follows redirects until a page, or until a URL starting with `stopAt`. */
  async go(url: string, init: { method?: string; form?: Record<string, string> } = {}, stopAt?: string): Promise<Page> {
    let method = init.method ?? (init.form ? "POST" : "GET");
    let body: string | undefined = init.form ? new URLSearchParams(init.form).toString() : undefined;
    for (let hops = 0; hops < 20; hops++) {
      if (stopAt && url.startsWith(stopAt)) return { url, status: 0, html: "" };
      const res = await fetch(url, {
        method,
        redirect: "manual",
        headers: { cookie: this.cookieHeader(), ...(body ? { "content-type": "application/x-www-form-urlencoded" } : {}) },
        body,
      });
      this.keep(res);
      const loc = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && loc) {
        url = new URL(loc, url).href;
        method = "GET";
        body = undefined;
        continue;
      }
      return { url, status: res.status, html: await res.text() };
    }
    throw new Error("too many redirects");
  }

  /** Submits the form of `page` whose action contains `action` (or the first), with its hidden fields plus `fields`. */
  async submit(page: Page, fields: Record<string, string>, action?: string, stopAt?: string, pick?: (form: string) => boolean): Promise<Page> {
    const forms = [...page.html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/g)].map((m) => m[0]);
    const form = forms.find((f) => (action ? f.includes(action) : true) && (pick ? pick(f) : true));
    if (!form) throw new Error(`no form ${action ?? ""} on ${page.url}: ${page.html.slice(0, 300)}`);
    const target = /action="([^"]*)"/.exec(form)?.[1] ?? page.url;
    const data: Record<string, string> = {};
    for (const m of form.matchAll(/<input\b[^>]*type="hidden"[^>]*>/g)) {
      const name = /name="([^"]*)"/.exec(m[0])?.[1];
      const value = /value="([^"]*)"/.exec(m[0])?.[1] ?? "";
      if (name) data[name] = value.replace(/&#(\d+);/g, (_x, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, "&");
    }
    return this.go(new URL(target.replace(/&amp;/g, "&"), page.url).href, { form: { ...data, ...fields } }, stopAt);
  }
}

/** Signs in at the login page that `start` leads to and answers the consent page; returns where it ends. */
export async function signIn(agent: Agent, start: string, username: string, password: string, stopAt: string): Promise<Page> {
  let page = await agent.go(start, {}, stopAt);
  if (page.html.includes('name="password"')) page = await agent.submit(page, { username, password }, "/login", stopAt);
  if (page.html.includes("/confirm")) page = await agent.submit(page, {}, "/confirm", stopAt);
  return page;
}
