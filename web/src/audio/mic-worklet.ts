/**
 * AudioWorklet: the microphone at the context's rate → PCM16LE 16 kHz frames (20 ms by default),
 * posted to the main thread as transferable ArrayBuffers. Bundled on its own by Vite (?worker&url).
 */
import { Downsampler } from "./pcm";

// The worklet global scope, which TypeScript's DOM library does not describe.
declare const sampleRate: number;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
  constructor(options?: unknown);
}
declare function registerProcessor(name: string, ctor: new (options: MicOptions) => AudioWorkletProcessor): void;

interface MicOptions {
  processorOptions?: { outRate?: number; frameMs?: number };
}

const MIC_PROCESSOR = "voxflow-mic";

class MicProcessor extends AudioWorkletProcessor {
  private readonly downsampler: Downsampler;

  constructor(options: MicOptions) {
    super(options);
    const o = options.processorOptions ?? {};
    this.downsampler = new Downsampler(sampleRate, o.outRate ?? 16000, o.frameMs ?? 20);
  }

  process(inputs: Float32Array[][]): boolean {
    const channel = inputs[0]?.[0];
    if (channel) {
      for (const frame of this.downsampler.push(channel)) this.port.postMessage(frame, [frame]);
    }
    return true;
  }
}

registerProcessor(MIC_PROCESSOR, MicProcessor);
