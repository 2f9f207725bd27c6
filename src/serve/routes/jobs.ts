// Jobs (jobs.ts): POST /v1/jobs {kind: 'customize'|'grpo'|'eval', character, options},
// GET /v1/jobs, GET /v1/jobs/:id, POST /v1/jobs/:id/cancel, GET /v1/jobs/:id/report
// (?format=json|md|html, eval jobs), GET /v1/eval/report (the newest evaluation's report.json,
// what the web UI's report page reads by default), and GET /v1/jobs/:id/events as SSE:
//
//   event: progress   data: <the job's progress JSON>      on connect and on every update
//   event: done       data: <the job>                      succeeded or cancelled; then the stream ends
//   event: error      data: {error: {...}, job: <the job>} failed or interrupted; then the stream ends
//
// A `: ping` comment every 15 s keeps proxies from closing an idle stream.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { parse, type AppContext } from '../context.js';
import type { JobRow } from '../db.js';
import { ApiError, errorBody } from '../errors.js';
import { JobManager, TERMINAL, dataDirOf, jobJson } from '../jobs.js';
import { JobRequestSchema } from '../schemas.js';

type IdParams = { Params: { id: string } };

const PING_MS = 15_000;

function openEvents(reply: FastifyReply): { send: (event: string, data: unknown) => void; end: () => void; closed: () => boolean } {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  const closed = (): boolean => res.destroyed || res.writableEnded;
  return {
    send: (event, data) => {
      if (!closed()) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    end: () => {
      if (!closed()) res.end();
    },
    closed,
  };
}

function endEvent(job: JobRow): { event: 'done' | 'error'; data: unknown } {
  if (job.status === 'succeeded' || job.status === 'cancelled') return { event: 'done', data: jobJson(job) };
  const e = new ApiError(500, job.error ?? `job ${job.status}`, 'server_error', null, job.status === 'interrupted' ? 'job_interrupted' : 'job_failed');
  return { event: 'error', data: { ...errorBody(e), job: jobJson(job) } };
}

export function jobRoutes(app: FastifyInstance, ctx: AppContext): JobManager {
  const jobs = new JobManager({ store: ctx.store, images: ctx.images, library: ctx.library, dataDir: dataDirOf(ctx.store, ctx.images) });
  app.addHook('onClose', async () => jobs.close());

  app.get('/v1/jobs', async () => ({ object: 'list', data: jobs.list().map(jobJson) }));

  app.post('/v1/jobs', async (req, reply) => {
    const body = parse(JobRequestSchema, req.body);
    const job = await jobs.submit(body);
    reply.code(201);
    return jobJson(job);
  });

  app.get<IdParams>('/v1/jobs/:id', async (req) => jobJson(jobs.require(req.params.id)));

  app.post<IdParams>('/v1/jobs/:id/cancel', async (req) => jobJson(jobs.cancel(req.params.id)));

  app.get<IdParams & { Querystring: { format?: string } }>('/v1/jobs/:id/report', async (req, reply) => {
    const job = jobs.require(req.params.id);
    const format = req.query.format ?? 'json';
    if (format !== 'json' && format !== 'md' && format !== 'html') throw new ApiError(400, 'format: expected json, md or html', 'invalid_request_error', 'format', 'invalid_value');
    const text = await jobs.report(job.id, format);
    if (text === undefined) throw new ApiError(404, `job ${job.id} has no evaluation report${job.kind === 'eval' ? ` (status ${job.status})` : ''}`, 'not_found_error', 'id', 'report_not_found');
    reply.type(format === 'json' ? 'application/json; charset=utf-8' : format === 'md' ? 'text/markdown; charset=utf-8' : 'text/html; charset=utf-8');
    // The HTML report is the evaluator's own output: never let it run scripts on this origin.
    if (format === 'html') reply.header('content-security-policy', "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox");
    return reply.send(text);
  });

  app.get('/v1/eval/report', async (_req, reply) => {
    const job = jobs.latestReportJob();
    const text = job && (await jobs.report(job.id, 'json'));
    if (!text) throw new ApiError(404, 'no evaluation report yet: run an eval job', 'not_found_error', null, 'report_not_found');
    reply.type('application/json; charset=utf-8');
    return reply.send(text);
  });

  app.get<IdParams>('/v1/jobs/:id/events', async (req, reply) => {
    const job = jobs.require(req.params.id);
    const sse = openEvents(reply);
    let ping: NodeJS.Timeout | null = null;
    let unsubscribe: () => void = () => {};
    const finish = (): void => {
      unsubscribe();
      if (ping) clearInterval(ping);
      sse.end();
    };
    let last = JSON.stringify(job.progress);
    sse.send('progress', job.progress);
    if (TERMINAL.has(job.status)) {
      const e = endEvent(job);
      sse.send(e.event, e.data);
      return finish();
    }
    unsubscribe = jobs.subscribe(job.id, ({ job: j }) => {
      const now = JSON.stringify(j.progress);
      if (now !== last) {
        last = now;
        sse.send('progress', j.progress);
      }
      if (TERMINAL.has(j.status)) {
        const e = endEvent(j);
        sse.send(e.event, e.data);
        finish();
      }
    });
    ping = setInterval(() => {
      if (sse.closed()) finish();
      else reply.raw.write(': ping\n\n');
    }, PING_MS);
    reply.raw.once('close', finish);
  });

  return jobs;
}
