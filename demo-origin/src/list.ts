import { badRequest } from "./http";

/** The API's list page (`Page` in the SDK): walk on with `after_id` = `last_id`. */
export interface ListPage<T> {
	data: T[];
	has_more: boolean;
	first_id: string | null;
	last_id: string | null;
}

/**
 * One page of `items` (already in list order) as the query of `url` asks: `limit` (1..1000,
 * default 20), then `after_id` or `before_id`. The files API's `page` cursor is read as
 * `after_id`, since {@link ListPage.last_id} is what this origin hands out as `next_page`.
 */
export function paginate<T extends { id: string }>(items: readonly T[], url: URL): ListPage<T> {
	const limitText = url.searchParams.get("limit");
	const limit = limitText === null ? 20 : Number(limitText);
	if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
		throw badRequest("limit: Input should be an integer between 1 and 1000");
	}
	const afterId = url.searchParams.get("after_id") ?? url.searchParams.get("page");
	const beforeId = url.searchParams.get("before_id");
	let start = 0;
	let end = items.length;
	// An unknown cursor gives an empty page rather than silently restarting the list.
	if (afterId !== null) {
		const at = items.findIndex((item) => item.id === afterId);
		start = at < 0 ? items.length : at + 1;
	}
	if (beforeId !== null) end = Math.max(0, items.findIndex((item) => item.id === beforeId));
	let page: T[];
	let hasMore: boolean;
	if (beforeId !== null && afterId === null) {
		page = items.slice(Math.max(0, end - limit), end);
		hasMore = end - limit > 0;
	} else {
		page = items.slice(start, Math.min(end, start + limit));
		hasMore = start + limit < end;
	}
	return {
		data: page,
		has_more: hasMore,
		first_id: page[0]?.id ?? null,
		last_id: page[page.length - 1]?.id ?? null,
	};
}
