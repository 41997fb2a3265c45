/**
 * JSON shapes of the ngrok Application Sessions API (`GET /app/sessions`, API version 2),
 * following the `ApplicationSession` schema of the ngrok OpenAPI document. Every field
 * except `id`, `uri` and `browser_session.user_agent.raw` may be absent or null, and
 * unknown fields may appear at any level.
 */

/** Reference to another ngrok resource, such as an endpoint or an application user. */
export interface Ref {
  id: string;
  uri: string;
}

/** Geolocation of the client IP address; ngrok may omit any field. */
export interface SessionLocation {
  /** ISO 3166-1 alpha-2 country code such as `US`. */
  country_code?: string | null;
  latitude?: number | null;
  longitude?: number | null;
  lat_long_radius_km?: number | null;
  [unknownField: string]: unknown;
}

/** Parsed `User-Agent` header of the browser; only `raw` is reliably present. */
export interface UserAgent {
  raw: string;
  browser_name?: string | null;
  browser_version?: string | null;
  /** Device class such as `Desktop`, `Mobile` or `Tablet`. */
  device_type?: string | null;
  os_name?: string | null;
  os_version?: string | null;
  [unknownField: string]: unknown;
}

/** Browser side of an application session. */
export interface BrowserSession {
  /** Client IP address: personal data that must never become a label or a log field. */
  ip_address?: string | null;
  location?: SessionLocation | null;
  user_agent: UserAgent;
  [unknownField: string]: unknown;
}

/** One application session as listed by `GET /app/sessions`. */
export interface AppSession {
  id: string;
  uri: string;
  /** URL of the endpoint the session belongs to, such as `https://app.example.com`. */
  public_url?: string | null;
  browser_session: BrowserSession;
  application_user?: Ref | null;
  /** RFC 3339 UTC time, such as `2025-11-18T09:42:17Z`. */
  created_at?: string | null;
  /** RFC 3339 UTC time of the last request in the session. */
  last_active?: string | null;
  /** RFC 3339 UTC time after which the session is no longer valid. */
  expires_at?: string | null;
  endpoint?: Ref | null;
  /** Edge of a legacy edge session (edges were retired on 2025-12-31). */
  edge?: Ref | null;
  /** Edge route of a legacy edge session. */
  route?: Ref | null;
  [unknownField: string]: unknown;
}

/** Body of a successful `GET /app/sessions` response. */
export interface SessionPage {
  application_sessions: AppSession[];
  /** Absolute URL of this page. */
  uri: string;
  /** Absolute URL of the next page, or null on the last page. */
  next_page_uri: string | null;
}
