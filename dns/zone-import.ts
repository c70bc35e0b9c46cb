import type { Decider, EventEnvelope, Execution } from "../services/kernel/index.js";
import { invalid, RealmError } from "../services/kernel/errors.js";
import type { RequestContext } from "../services/host/context.js";
import { DnsEvents, zoneDecider, type ImportCommand, type ZoneState } from "./domain/zone.js";
import { chunkBudget, type ZoneImportStartedData } from "./domain/import.js";
import { DNS_UPLOADS_BUCKET } from "./contract.js";
import type { UploadBucket } from "./uploads.js";
import { DEFAULT_IMPORT_MAX_BYTES, parseZoneStream, parseZoneText, type ImportLimits, type ReadZoneFile } from "./zonefile-stream.js";

type CommandCtx = Pick<RequestContext, "commandId" | "actor" | "correlationId" | "causationId" | "authz">;

export interface ZoneImportDeps {
  /** Runs a zone command through the write model and waits for the projection (service.ts `run`). */
  run<C>(decider: Decider<ZoneState, C>, zone: string, command: C, ctx: CommandCtx): Promise<Execution<ZoneState>>;
  /** The uploads bucket (opened on first use). */
  uploads(): Promise<UploadBucket>;
  /** The largest message the NATS server takes now (nc.info.max_payload). */
  maxPayload(): number | undefined;
  limits: ImportLimits;
  /** The command id of a follow-up step of a command (service.ts). */
  derivedId(commandId: string, n: number): string;
  log: { warn(obj: object, msg: string): void };
}

/** Where the master file is: inline, in the uploads bucket, or the HTTP request's body. */
export interface ZoneImportInput {
  text?: string;
  upload?: string;
  /** SHA-256 (hex) the caller expects the file to have. */
  sha256?: string;
}

export interface ZoneImportReply {
  zone: string;
  serial: number;
  records: number;
  /** The file's size and SHA-256 (hex); a resend answered from the import's events has the digest only. */
  bytes?: number;
  sha256?: string;
}

/** Errors that say the file (or the import it asks for) is refused: its upload is then of no further use. */
const refusal = (err: unknown) => err instanceof RealmError && ["MALFORMED", "VALIDATION", "INTEGRITY", "ALREADY_EXISTS"].includes(err.code);

const committed = (events: EventEnvelope[]) => events.some((e) => e.type === DnsEvents.ZoneImportCommitted || e.type === DnsEvents.ZoneImported);

/** What an import's events say it imported (a resend whose upload is gone is answered with it). */
function summary(events: EventEnvelope[]): { records: number; sha256?: string } {
  for (const e of events) {
    if (e.type === DnsEvents.ZoneImportStarted) {
      const d = e.data as ZoneImportStartedData;
      return { records: d.records, ...(d.sha256 ? { sha256: d.sha256 } : {}) };
    }
    if (e.type === DnsEvents.ZoneImported) return { records: (e.data as { records: unknown[] }).records.length };
  }
  return { records: 0 };
}

/** Decides nothing: asked only whether this command id ran before (then the write model answers from its events). */
const replayOnly: Decider<ZoneState, RealmError> = {
  aggregateType: zoneDecider.aggregateType,
  initialState: zoneDecider.initialState,
  evolve: zoneDecider.evolve,
  decide(_s, err) {
    throw err;
  },
};

/** How many times a command whose earlier run died between chunks is run again under a derived id. */
const RESUMES = 3;

/**
 * `zone.import`: reads the master file whole (streamed, from wherever it is), parses and checks every line,
 * then runs one command that appends the import's events (Started, chunks, Committed). An upload is deleted
 * once imported or refused; after other failures (NATS unreachable, a conflict) it stays for a retry, and
 * the bucket's age limit removes what nobody retries.
 *
 * A resent command is answered from its events. When those events stop before the commit (the earlier run
 * died between chunks), the zone never showed any of it, and the import runs again under a derived id.
 */
export function zoneImporter(deps: ZoneImportDeps) {
  const limits = { maxBytes: DEFAULT_IMPORT_MAX_BYTES, ...deps.limits };

  async function read(zone: string, i: ZoneImportInput, body: AsyncIterable<Uint8Array> | undefined): Promise<ReadZoneFile> {
    if (i.text !== undefined) return parseZoneText(i.text, zone, limits);
    if (body) return parseZoneStream(body, zone, limits);
    const bucket = await deps.uploads();
    return parseZoneStream(bucket.read(i.upload!, limits.maxBytes), zone, limits);
  }

  async function forget(upload: string | undefined): Promise<void> {
    if (!upload) return;
    const bucket = await deps.uploads();
    await bucket.remove(upload).catch((err: unknown) => deps.log.warn({ upload, err: err instanceof Error ? err.message : String(err) }, `could not delete upload ${upload} from ${DNS_UPLOADS_BUCKET}; its age limit will`));
  }

  return async function importZone(zone: string, i: ZoneImportInput, ctx: CommandCtx & { body?: AsyncIterable<Uint8Array> | undefined }): Promise<ZoneImportReply> {
    const given = [i.text !== undefined, i.upload !== undefined, ctx.body !== undefined].filter(Boolean).length;
    if (given !== 1) throw invalid(`give the master file once: as \`text\`, as \`upload\` (an object of the ${DNS_UPLOADS_BUCKET} bucket), or as the body of POST /api/dns/zones/{zone}/file`);
    let file: ReadZoneFile;
    try {
      file = await read(zone, i, ctx.body);
      if (i.sha256 && i.sha256 !== file.sha256) throw invalid(`the master file's SHA-256 is ${file.sha256}, not ${i.sha256}`);
    } catch (err) {
      if (i.upload && err instanceof RealmError && err.code === "NOT_FOUND") {
        // Imported and deleted already? A resend of that command is answered from its events.
        const earlier = await deps.run(replayOnly, zone, err, ctx);
        if (committed(earlier.events)) return { zone, serial: earlier.state.serial, ...summary(earlier.events) };
        throw err;
      }
      if (refusal(err)) await forget(i.upload);
      throw err;
    }
    const cmd: ImportCommand = {
      type: "import",
      importId: ctx.commandId,
      soa: file.parsed.soa,
      serial: file.parsed.serial ?? undefined,
      records: file.parsed.records,
      sha256: file.sha256,
      chunkBytes: chunkBudget(deps.maxPayload()),
    };
    let r: Execution<ZoneState>;
    try {
      r = await deps.run(zoneDecider, zone, cmd, ctx);
      for (let n = 0, id = ctx.commandId; r.replayed && !committed(r.events); n++) {
        if (n >= RESUMES) throw new RealmError("UNAVAILABLE", `earlier runs of command ${ctx.commandId} stopped before their import was committed; send it again with a new command id`);
        id = deps.derivedId(id, 1);
        r = await deps.run(zoneDecider, zone, { ...cmd, importId: id }, { ...ctx, commandId: id });
      }
    } catch (err) {
      if (refusal(err)) await forget(i.upload);
      throw err;
    }
    await forget(i.upload);
    return { zone, serial: r.state.serial, records: file.parsed.records.length, bytes: file.bytes, sha256: file.sha256 };
  };
}
