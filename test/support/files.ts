import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** Every file under a directory, recursively (what a test searches for leaked secrets). */
export const filesUnder = (dir: string): string[] => (readdirSync(dir, { recursive: true }) as string[]).map((f) => join(dir, f)).filter((p) => statSync(p).isFile());
