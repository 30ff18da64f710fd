/**
 * The coordinator nodes this tab may use: the page's own origin first, then the nodes named by
 * `?coordinators=<url>,<url>` (a multi-node coordinator, `swarmgrad serve --redis`). The tab's
 * client connects to the first and, when a node stops answering, moves on to the next one and
 * resumes its seat there with its resume token (packages/worker client.ts). Only http(s)
 * origins are taken; anything else in the list is ignored.
 */
export function coordinatorUrls(
  origin: string = window.location.origin,
  search: string = window.location.search,
): string[] {
  const urls = [origin];
  const listed = new URLSearchParams(search).get('coordinators');
  for (const item of (listed ?? '').split(',')) {
    const text = item.trim();
    if (text === '') continue;
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      continue;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    if (!urls.includes(url.origin)) urls.push(url.origin);
  }
  return urls;
}
