/** The volunteer page's list of coordinator nodes (`?coordinators=`, multi-node coordinators). */
import { describe, expect, it } from 'vitest';
import { coordinatorUrls } from '../src/volunteer/coordinators.ts';

describe('coordinatorUrls', () => {
  it('is the page origin alone without the parameter', () => {
    expect(coordinatorUrls('http://a:8080', '')).toEqual(['http://a:8080']);
    expect(coordinatorUrls('http://a:8080', '?debug&backend=wasm')).toEqual(['http://a:8080']);
  });

  it('adds the listed nodes after the origin, as origins, once each', () => {
    expect(
      coordinatorUrls(
        'http://a:8080',
        '?coordinators=http://b:8080/,https://c.example/x?y,http://a:8080,http://b:8080',
      ),
    ).toEqual(['http://a:8080', 'http://b:8080', 'https://c.example']);
  });

  it('ignores what is not an http(s) URL', () => {
    expect(
      coordinatorUrls(
        'http://a:8080',
        `?coordinators=${encodeURIComponent('javascript:alert(1),ws://d,nonsense,,http://e')}`,
      ),
    ).toEqual(['http://a:8080', 'http://e']);
  });
});
