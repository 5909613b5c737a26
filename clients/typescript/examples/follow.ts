// A small consumer of the generated types: submit a roadmap, follow its progress stream
// and read a concept's tutorial. `tsc` checks it in CI, so a change of the API document
// that breaks a consumer breaks this file first (see docs/api.md).
import type { components, operations } from "../src/schema";

type Schemas = components["schemas"];
export type RoadmapRequest = Schemas["RoadmapRequest"];
export type Problem = Schemas["Problem"];
type Accepted =
  operations["roadmaps_create"]["responses"][202]["content"]["application/json"];
type Roadmap =
  operations["roadmaps_get"]["responses"][200]["content"]["application/json"];
type Concept =
  operations["concepts_get"]["responses"][200]["content"]["application/json"];

/** Every event type of the stream with its payload: must name every `event` the
 * document declares (a new one fails to compile here until it is handled). */
export type EventName = Schemas["ProgressStreamItem"]["event"];
export interface StreamEvents extends Record<EventName, unknown> {
  snapshot: Schemas["SnapshotEvent"];
  status: Schemas["StatusEvent"];
  step: Schemas["StepEvent"];
  item: Schemas["ItemEvent"];
  review_required: Schemas["ReviewRequiredEvent"];
  completed: Schemas["CompletedEvent"];
  failed: Schemas["FailedEvent"];
  cancelled: Schemas["CancelledEvent"];
}
const TERMINAL: ReadonlySet<EventName> = new Set<EventName>(["completed", "failed", "cancelled"]);

export class ApiError extends Error {
  constructor(readonly status: number, readonly problem: Problem) {
    super(`${status} ${problem.title}${problem.detail ? `: ${problem.detail}` : ""}`);
  }
}

export class RoadmapApi {
  constructor(private readonly base: string, private readonly token: string) {}

  private async call<T>(path: string, init: RequestInit = {}): Promise<T> {
    const response = await fetch(this.base + path, {
      ...init,
      headers: { Authorization: `Bearer ${this.token}`, "Content-Type": "application/json" },
    });
    if (!response.ok) {
      throw new ApiError(response.status, (await response.json()) as Problem);
    }
    return (await response.json()) as T;
  }

  create(request: RoadmapRequest): Promise<Accepted> {
    return this.call<Accepted>("/api/v1/roadmaps", {
      method: "POST",
      body: JSON.stringify(request),
    });
  }

  roadmap(id: string): Promise<Roadmap> {
    return this.call<Roadmap>(`/api/v1/roadmaps/${id}`);
  }

  concept(roadmapId: string, conceptId: string): Promise<Concept> {
    return this.call<Concept>(`/api/v1/roadmaps/${roadmapId}/concepts/${conceptId}`);
  }

  /** Follow the stream (fetch, so the token travels in a header) until a terminal event;
   * `lastEventId` resumes. Resolves with the id of the last event seen. */
  async follow(
    id: string,
    on: { [K in EventName]?: (data: StreamEvents[K], eventId: string) => void },
    lastEventId?: string,
  ): Promise<string | undefined> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}` };
    if (lastEventId !== undefined) headers["Last-Event-ID"] = lastEventId;
    const response = await fetch(`${this.base}/api/v1/roadmaps/${id}/events`, { headers });
    if (response.status === 204) return lastEventId; // already ended: stop reconnecting
    if (!response.ok || response.body === null) {
      throw new ApiError(response.status, (await response.json()) as Problem);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let seen = lastEventId;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return seen;
      buffer += value.replaceAll("\r\n", "\n");
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = new Map<string, string>();
        for (const line of block.split("\n")) {
          const colon = line.indexOf(":");
          if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart());
        }
        const name = fields.get("event") as EventName | undefined;
        const data = fields.get("data");
        if (name === undefined || data === undefined) continue;
        seen = fields.get("id") ?? seen;
        dispatch(on, name, JSON.parse(data) as StreamEvents[typeof name], seen ?? "");
        if (TERMINAL.has(name)) return seen;
      }
    }
  }
}

function dispatch<K extends EventName>(
  on: { [N in EventName]?: (data: StreamEvents[N], eventId: string) => void },
  name: K,
  data: StreamEvents[K],
  eventId: string,
): void {
  on[name]?.(data, eventId);
}

/** What a web page would do: submit, show progress, then the first tutorial. */
export async function example(api: RoadmapApi): Promise<string | null> {
  const accepted = await api.create({
    goal: "Learn Rust for embedded work",
    level: "intermediate",
    weekly_hours: 6,
    weeks: 12,
  });
  await api.follow(accepted.id, {
    item: (event) => console.log(`${event.kind} ${event.status}: ${event.progress.done}/${event.progress.total}`),
    completed: (event) => console.log(`done (${event.status}), ${event.failed_items.length} failed`),
    failed: (event) => console.log(`failed: ${event.error ?? "unknown"}`),
  });
  const roadmap = await api.roadmap(accepted.id);
  const first = roadmap.framework?.stages[0]?.modules[0]?.concepts[0];
  if (first === undefined) return null;
  const concept = await api.concept(roadmap.id, first.id);
  const tutorial = concept.content["tutorial"];
  // `kind` narrows the union: only a TutorialItem's body has `markdown`.
  if (tutorial?.kind !== "tutorial" || tutorial.result === null) return null;
  return tutorial.result.body.markdown;
}
