import { toBinary } from "@bufbuild/protobuf";
import type { DescFile, DescService } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/** One proto file as reflection sends it: its FileDescriptorProto, serialized once. */
export interface IndexedFile {
  /** The file's path in the proto tree, e.g. "rgrid/v1/execution.proto". */
  name: string;
  /** Its FileDescriptorProto in the protobuf binary format. */
  descriptor: Uint8Array;
  /** The files it imports. */
  dependencies: readonly IndexedFile[];
}

/**
 * The proto files behind a set of services — theirs and everything they import — looked up the
 * ways server reflection asks: by file name, by a symbol's full name, by an extension's target and
 * number. Built once; every lookup is then a map read.
 */
export interface DescriptorIndex {
  fileByName(name: string): IndexedFile | undefined;
  /** The file declaring a service, method, message, enum or extension, nested ones included. */
  fileContainingSymbol(fullName: string): IndexedFile | undefined;
  /** The file declaring the extension `number` of message `extendee`. */
  fileContainingExtension(extendee: string, number: number): IndexedFile | undefined;
  /** The known extension numbers of a message, ascending; undefined when the message is not known. */
  extensionNumbersOf(messageName: string): number[] | undefined;
}

export function createDescriptorIndex(services: readonly DescService[]): DescriptorIndex {
  const files = new Map<string, IndexedFile>();
  const symbols = new Map<string, IndexedFile>();
  const messages = new Set<string>();
  const extensions = new Map<string, Map<number, IndexedFile>>();

  const addFile = (file: DescFile): IndexedFile => {
    const known = files.get(file.proto.name);
    if (known !== undefined) {
      return known;
    }
    const dependencies: IndexedFile[] = [];
    const indexed: IndexedFile = { name: file.proto.name, descriptor: toBinary(FileDescriptorProtoSchema, file.proto), dependencies };
    files.set(indexed.name, indexed);
    for (const type of nestedTypes(file)) {
      symbols.set(type.typeName, indexed);
      switch (type.kind) {
        case "message":
          messages.add(type.typeName);
          break;
        case "service":
          // Methods are symbols too ("pkg.Service.Method"); protobuf-es does not name them so.
          for (const method of type.methods) {
            symbols.set(`${type.typeName}.${method.name}`, indexed);
          }
          break;
        case "extension": {
          const byNumber = extensions.get(type.extendee.typeName) ?? new Map<number, IndexedFile>();
          byNumber.set(type.number, indexed);
          extensions.set(type.extendee.typeName, byNumber);
          break;
        }
      }
    }
    // After the file itself is known: an import cycle (which protoc refuses anyway) ends here.
    dependencies.push(...file.dependencies.map(addFile));
    return indexed;
  };
  services.forEach((service) => addFile(service.file));

  return {
    fileByName: (name) => files.get(name),
    fileContainingSymbol: (fullName) => symbols.get(fullName),
    fileContainingExtension: (extendee, number) => extensions.get(extendee)?.get(number),
    extensionNumbersOf: (messageName) =>
      messages.has(messageName) ? [...(extensions.get(messageName)?.keys() ?? [])].sort((a, b) => a - b) : undefined,
  };
}
