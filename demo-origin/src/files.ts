import type { BetaDeletedFile, BetaFileMetadata } from "@anthropic-ai/sdk/resources/beta/files";
import { badRequest, jsonResponse, notFound, type RequestContext } from "./http";
import { newId, nowRfc3339 } from "./ids";
import { paginate } from "./list";
import { concat, multipartBoundary, type PartSink, readMultipart } from "./multipart";

interface StoredFile {
	readonly metadata: BetaFileMetadata;
	/** The bytes, kept only up to {@link KEEP_CONTENT_BYTES}; null for larger files. */
	readonly content: Uint8Array | null;
}

/** The file part as it streams in. */
interface ReceivedFile {
	readonly filename: string;
	readonly mimeType: string;
	size: number;
	/** Dropped (null) as soon as the part grows past {@link KEEP_CONTENT_BYTES}. */
	chunks: Uint8Array[] | null;
}

/**
 * All files, in upload order. Module-level memory is enough for a demo: it lives as long as the
 * isolate, is not shared between isolates, and is lost on restart.
 */
const files = new Map<string, StoredFile>();

/**
 * Uploads up to this size keep their bytes so `GET /v1/files/:id/content` can answer them; larger
 * ones (uploads may be hundreds of MB) keep only their metadata and their content is a 404.
 */
export const KEEP_CONTENT_BYTES = 1024 * 1024;
const MAX_FIELD_BYTES = 64 * 1024;
const MIN_EXPIRES_IN_SECONDS = 3600;
const MAX_EXPIRES_IN_SECONDS = 7_776_000;

function find(id: string): StoredFile {
	const stored = files.get(id);
	if (stored === undefined) throw notFound(`File not found: ${id}`);
	return stored;
}

/** The stored name: only the last path component; an absent or empty one becomes `unnamed`. */
function storedFilename(sent: string | null): string {
	const last = (sent ?? "").split(/[\\/]/).pop() ?? "";
	return last === "" ? "unnamed" : last;
}

function fieldCollector(into: Map<string, string>, name: string): PartSink {
	const chunks: Uint8Array[] = [];
	let size = 0;
	into.set(name, "");
	return (bytes) => {
		size += bytes.byteLength;
		if (size > MAX_FIELD_BYTES) throw badRequest(`${name}: form field exceeds ${MAX_FIELD_BYTES} bytes`);
		chunks.push(bytes.slice());
		into.set(name, new TextDecoder().decode(concat(chunks)));
	};
}

function expiresAt(fields: ReadonlyMap<string, string>): string | null {
	const text = fields.get("expires_in_seconds");
	if (text === undefined) return null;
	const seconds = Number(text.trim());
	if (!Number.isInteger(seconds) || seconds < MIN_EXPIRES_IN_SECONDS || seconds > MAX_EXPIRES_IN_SECONDS) {
		throw badRequest(`expires_in_seconds: must be an integer from ${MIN_EXPIRES_IN_SECONDS} to ${MAX_EXPIRES_IN_SECONDS}`);
	}
	return nowRfc3339(seconds * 1000);
}

/**
 * `POST /v1/files`: reads the multipart body as it streams and counts the `file` part's bytes
 * exactly, never holding more than {@link KEEP_CONTENT_BYTES} of it.
 */
export async function uploadFile(ctx: RequestContext): Promise<Response> {
	const boundary = multipartBoundary(ctx.request.headers.get("content-type"));
	if (boundary === null) throw badRequest("Content-Type must be multipart/form-data with a boundary");
	if (ctx.request.body === null) throw badRequest("file: Field required");
	const received: { file: ReceivedFile | null } = { file: null };
	const fields = new Map<string, string>();
	await readMultipart(ctx.request.body, boundary, (headers) => {
		if (headers.name !== "file") return fieldCollector(fields, headers.name ?? "");
		if (received.file !== null) throw badRequest("file: only one file part is allowed");
		const file: ReceivedFile = {
			filename: storedFilename(headers.filename),
			mimeType: (headers.contentType ?? "").split(";")[0]?.trim().toLowerCase() || "application/octet-stream",
			size: 0,
			chunks: [],
		};
		received.file = file;
		return (bytes) => {
			file.size += bytes.byteLength;
			if (file.chunks === null) return;
			if (file.size > KEEP_CONTENT_BYTES) file.chunks = null;
			else file.chunks.push(bytes.slice());
		};
	});
	const file = received.file;
	if (file === null) throw badRequest("file: Field required");
	const metadata: BetaFileMetadata = {
		id: newId("file"),
		type: "file",
		filename: file.filename,
		mime_type: file.mimeType,
		size_bytes: file.size,
		created_at: nowRfc3339(),
		downloadable: false,
		expires_at: expiresAt(fields),
	};
	files.set(metadata.id, { metadata, content: file.chunks === null ? null : concat(file.chunks) });
	return jsonResponse(metadata);
}

/** `GET /v1/files`: newest first; `next_page` (the files API's cursor) is the last ID while more remain. */
export function listFiles(ctx: RequestContext): Response {
	const newestFirst = [...files.values()].reverse().map((stored) => stored.metadata);
	const page = paginate(newestFirst, ctx.url);
	return jsonResponse({ ...page, next_page: page.has_more ? page.last_id : null });
}

/** `GET /v1/files/:id`. */
export function getFile(id: string): Response {
	return jsonResponse(find(id).metadata);
}

/** `DELETE /v1/files/:id`. */
export function deleteFile(id: string): Response {
	find(id);
	files.delete(id);
	const deleted: BetaDeletedFile = { id, type: "file_deleted" };
	return jsonResponse(deleted);
}

/**
 * `GET /v1/files/:id/content`: the bytes of a file of at most {@link KEEP_CONTENT_BYTES}; a larger
 * file's bytes were never kept, so its content is a 404.
 */
export function fileContent(id: string): Response {
	const { metadata, content } = find(id);
	if (content === null) {
		throw notFound(`File content not kept: ${id} has ${metadata.size_bytes} bytes; the demo origin keeps content only up to ${KEEP_CONTENT_BYTES} bytes`);
	}
	return new Response(content, {
		headers: {
			"content-type": metadata.mime_type,
			"content-disposition": `attachment; filename*=utf-8''${encodeURIComponent(metadata.filename)}`,
		},
	});
}
