// Minimal Fastify server for bench/http/run: the same two JSON routes as Loci,
// answering the same bytes.
//
//   GET /health          {"status":"ok"}\n
//   GET /api/v1/version  {"name":...,"version":...,"commit":...,"api":...}\n
//
// Like Loci (jansson), the version object is built and serialized on every
// request; only its field values are fixed at start-up, taken from
// LOCI_VERSION_JSON (Loci's own answer, fetched by the run script) so the
// bytes match.
//
// Environment:
//   HOST                 address to bind (default 127.0.0.1)
//   PORT                 port (required)
//   WORKERS              worker processes via node:cluster (default 2, i.e.
//                        the same cores Loci and nginx get); 1 = no cluster
//   LOCI_VERSION_JSON    Loci's /api/v1/version body
import cluster from 'node:cluster';
import process from 'node:process';
import Fastify from 'fastify';

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT);
const workers = Number(process.env.WORKERS || 2);
if (!Number.isInteger(port) || port <= 0) {
    console.error('server.mjs: PORT is required');
    process.exit(2);
}

function startServer() {
    const v = JSON.parse(process.env.LOCI_VERSION_JSON || '{}');
    const app = Fastify({ logger: false });

    // Loci ends every JSON body with "\n" and sends "application/json"
    // without a charset; do the same so the bytes are identical. A per-reply
    // serializer is used because with the default one Fastify appends
    // "; charset=utf-8" to the content type.
    const json = (payload) => JSON.stringify(payload) + '\n';

    app.get('/health', (request, reply) => {
        reply.type('application/json').serializer(json);
        return { status: 'ok' };
    });

    app.get('/api/v1/version', (request, reply) => {
        reply.type('application/json').serializer(json);
        return { name: v.name, version: v.version, commit: v.commit, api: v.api };
    });

    app.listen({ host, port }).catch((err) => {
        console.error(err);
        process.exit(1);
    });
}

if (workers > 1 && cluster.isPrimary) {
    for (let i = 0; i < workers; i++) cluster.fork();
    cluster.on('exit', (worker, code, signal) => {
        console.error(`server.mjs: worker ${worker.process.pid} exited (${signal || code})`);
        process.exit(1);
    });
    const stop = () => {
        for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
        process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
} else {
    startServer();
}
