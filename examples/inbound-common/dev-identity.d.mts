export declare const DEV_ISSUER: string;
export declare function devToken(sub?: string, groups?: string[]): Promise<string>;
