/** A small Prometheus text-format registry: counters and summaries keyed by label sets. */
export class Metrics {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();

  private series(name: string, help: string) {
    let s = this.counters.get(name);
    if (!s) this.counters.set(name, (s = { help, values: new Map() }));
    return s;
  }

  inc(name: string, help: string, labels: Record<string, string>, by = 1): void {
    const s = this.series(name, help);
    const key = labelText(labels);
    s.values.set(key, (s.values.get(key) ?? 0) + by);
  }

  render(extra: string[] = []): string {
    const out: string[] = [];
    for (const [name, s] of this.counters) {
      out.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} counter`);
      for (const [labels, v] of s.values) out.push(`${name}${labels} ${v}`);
    }
    const mem = process.memoryUsage();
    out.push(
      "# HELP process_resident_memory_bytes Resident memory size in bytes.",
      "# TYPE process_resident_memory_bytes gauge",
      `process_resident_memory_bytes ${mem.rss}`,
      "# HELP process_uptime_seconds Seconds since the process started.",
      "# TYPE process_uptime_seconds gauge",
      `process_uptime_seconds ${process.uptime().toFixed(3)}`,
      ...extra,
    );
    return out.join("\n") + "\n";
  }
}

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}
